import { defaultClientConditions, defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// Tests run against the TypeScript sources of every workspace package (no build step first):
// each package exports a "@egl/source" condition that points at src/index.ts.
const conditions = ["@egl/source"]

export default defineConfig({
  resolve: { conditions: [...conditions, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [...conditions, ...defaultServerConditions] } },
  test: {
    projects: [
      { extends: true, test: { name: "core", root: "packages/core", include: ["test/**/*.test.ts"] } },
      {
        extends: true,
        test: { name: "ledger-sqlite", root: "packages/ledger-sqlite", include: ["test/**/*.test.ts"] }
      },
      {
        extends: true,
        test: {
          name: "cross-package",
          root: "test",
          include: ["**/*.test.ts"],
          exclude: ["bench/**", "node_modules/**"]
        }
      }
    ]
  }
})
