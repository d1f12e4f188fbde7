#!/usr/bin/env node
// The published entry point: runs the compiled CLI (`pnpm egl` runs the TypeScript sources instead).
import { main } from "../dist/main.js"

process.exitCode = await main(process.argv.slice(2))
