/**
 * Renders a rejected value for an error message: numbers as written (`-1`, `NaN`), strings
 * quoted so empty strings and stray whitespace are visible, anything else by its type (JS
 * callers are not held to the TypeScript types).
 */
export function describeValue(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
