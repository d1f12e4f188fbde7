import { fileURLToPath } from "node:url"
import { ledgerCrashTest } from "../../../test/support/ledgerCrash.ts"
import { SqliteLedger } from "../src/index.ts"

ledgerCrashTest({
  name: "sqlite",
  module: fileURLToPath(new URL("../src/SqliteLedger.ts", import.meta.url)),
  fileName: "ledger.db",
  open: (path) => SqliteLedger.open(path)
})
