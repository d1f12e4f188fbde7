import { defaultClientConditions, defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// Tests run against the TypeScript sources of every workspace package (no build step first):
// each package exports a "@egl/source" condition that points at src/index.ts.
const conditions = ["@egl/source"]

const project = (name: string, root: string) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"] }
})

export default defineConfig({
  resolve: { conditions: [...conditions, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [...conditions, ...defaultServerConditions] } },
  test: {
    projects: [
      project("core", "packages/core"),
      project("ledger-sqlite", "packages/ledger-sqlite"),
      project("ledger-postgres", "packages/ledger-postgres"),
      project("redis", "packages/redis"),
      project("express", "packages/express"),
      project("nest", "packages/nest"),
      project("trpc", "packages/trpc"),
      project("cli", "packages/cli"),
      project("serving-api", "apps/serving-api"),
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
