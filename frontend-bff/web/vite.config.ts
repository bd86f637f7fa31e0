/// <reference types="vitest/config" />
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// The persisted-documents manifest codegen wrote, re-keyed as "sha256:<hex>" (the GraphQL over
// HTTP document identifier), emitted into dist/ beside the app.
function persistedDocuments(): Plugin {
  return {
    name: "bourse-persisted-documents",
    apply: "build",
    generateBundle() {
      const raw = JSON.parse(readFileSync("src/gql/persisted-documents.json", "utf8")) as Record<string, string>;
      const manifest: Record<string, string> = {};
      for (const [hash, doc] of Object.entries(raw)) {
        const check = createHash("sha256").update(doc).digest("hex");
        if (check !== hash) throw new Error(`persisted document hash mismatch for ${hash}`);
        manifest[`sha256:${hash}`] = doc;
      }
      this.emitFile({ type: "asset", fileName: "persisted-documents.json", source: JSON.stringify(manifest, null, 2) });
    },
  };
}

export default defineConfig({
  plugins: [react(), persistedDocuments()],
  build: {
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: { proxy: { "/graphql": { target: "http://127.0.0.1:8000", ws: true } } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
