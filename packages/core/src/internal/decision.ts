/**
 * Builds an error that stands for a decision (a denial, a refused grant), not for a bug. Its stack trace says nothing
 * (the reason codes and the ledger say everything) and capturing it costs more than the rest of a denial, so it is
 * built with V8's stack capture off for the length of the constructor call only. JavaScript runs the call to its end
 * before anything else, so nothing else sees the setting.
 */
export const decision = <A>(build: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return build()
  } finally {
    Error.stackTraceLimit = limit
  }
}
