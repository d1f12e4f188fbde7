import { fileURLToPath } from "node:url"
import { ledgerCrashTest } from "../../../test/support/ledgerCrash.ts"
import { PostgresLedger } from "../src/index.ts"
import { testDatabase, urlOf } from "./support/database.ts"

const db = testDatabase("crash")

// The child's `layer(path, options)` is `PostgresLedger.layer(url)`: the URL names the schema.
ledgerCrashTest({
  name: "postgres",
  module: fileURLToPath(new URL("../src/PostgresLedger.ts", import.meta.url)),
  target: urlOf(db.fresh()),
  open: (url) => PostgresLedger.open(url)
})
