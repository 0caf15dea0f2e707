import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importThroughIndex from "./scripts/eslint/import-through-index.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "guest/build/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        URL: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { wheellock: { rules: { "import-through-index": importThroughIndex } } },
    rules: { "wheellock/import-through-index": "error" },
  },
);
