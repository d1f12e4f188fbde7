import { fileURLToPath } from "node:url"
import { ledgerCrashTest } from "../../../test/support/ledgerCrash.ts"
import * as FileLedger from "../src/FileLedger.ts"

ledgerCrashTest({
  name: "file",
  module: fileURLToPath(new URL("../src/FileLedger.ts", import.meta.url)),
  fileName: "ledger.jsonl",
  open: FileLedger.open,
  describe: (storage) => `${storage.recoveredBytes} torn-tail bytes recovered on the last open`
})
