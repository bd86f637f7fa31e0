// Operations live in .graphql files beside the screens that use them (src/features/<x>/);
// types come from the exported server schema, so a schema change that breaks the app fails
// the build. The preset also writes persisted-documents.json (sha256 hash -> document), which
// the build copies into dist/ for the server to serve as trusted documents later.
import type { CodegenConfig } from "@graphql-codegen/cli";
import { addTypenameSelectionDocumentTransform } from "@graphql-codegen/client-preset";

const config: CodegenConfig = {
  schema: "../../graphql/schema.graphql",
  documents: ["src/features/**/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      // urql adds __typename to every selection: the manifest holds exactly what is sent.
      documentTransforms: [addTypenameSelectionDocumentTransform],
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { mode: "embedHashInDocument", hashAlgorithm: "sha256", hashPropertyName: "hash" },
      },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: {
          Decimal: "string",
          AmountInput: "string",
          DateTime: "string",
          Date: "string",
        },
      },
    },
  },
};

export default config;
