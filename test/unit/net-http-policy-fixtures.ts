import type {
  BodyAccess,
  HttpRequestHead,
  HttpResponseHead,
} from "../../src/net/intercept/contract.js";

export function req(over: Partial<HttpRequestHead> = {}): HttpRequestHead {
  return {
    method: "GET",
    scheme: "https",
    host: "api.example.com",
    port: 443,
    target: "/v1/items?x=1",
    headers: [
      ["Host", "api.example.com"],
      ["Accept", "*/*"],
    ],
    ...over,
  };
}

export function res(over: Partial<HttpResponseHead> = {}): HttpResponseHead {
  return { status: 200, headers: [["Content-Type", "application/json"]], ...over };
}

/** A BodyAccess over a fixed buffer that counts reads and honours the limit. */
export function bodyOf(data: Buffer | string = ""): BodyAccess & { reads: number } {
  const buf = Buffer.from(data);
  const access = {
    reads: 0,
    async readBody(limit: number) {
      access.reads++;
      if (buf.length > limit) throw new Error(`body larger than ${limit} bytes`);
      return buf;
    },
  };
  return access;
}

export const header = (h: HttpRequestHead | HttpResponseHead, name: string) =>
  h.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
