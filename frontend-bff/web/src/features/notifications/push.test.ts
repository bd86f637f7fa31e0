import { describe, expect, it } from "vitest";
import { keyBytes } from "./push";

describe("keyBytes", () => {
  it("decodes the server's URL-safe, unpadded base64 VAPID key", () => {
    // 0xfb 0xff 0xbf: "+/+/" in standard base64, "-_-_" URL-safe; no padding either way
    expect([...keyBytes("-_-_")]).toEqual([0xfb, 0xff, 0xbf]);
    expect([...keyBytes("AQ")]).toEqual([1]); // padding restored
    expect(keyBytes("B".repeat(87)).length).toBe(65); // an uncompressed P-256 point's length
  });
});
