/**
 * Where a command writes: standard output for results (human text or one JSON document), standard error for errors in
 * human mode. Commands take an {@link Io} so tests and embedding programs capture what they print.
 * @module
 */

/** The output streams of a command. */
export interface Io {
  /** Writes text to standard output as is (callers end their lines). */
  readonly stdout: (text: string) => void
  /** Writes text to standard error as is. */
  readonly stderr: (text: string) => void
}

/** The process's own streams. */
export const processIo: Io = {
  stdout: (text) => {
    process.stdout.write(text)
  },
  stderr: (text) => {
    process.stderr.write(text)
  }
}

/** An {@link Io} that keeps what is written, for tests and programs that run commands in-process. */
export interface CapturedIo extends Io {
  /** Everything written to standard output so far. */
  readonly out: string
  /** Everything written to standard error so far. */
  readonly err: string
}

/**
 * A fresh {@link CapturedIo}.
 *
 * @example
 * ```ts
 * const io = Io.capture()
 * const code = await main(["fingerprint", "--json"], io)
 * const { fingerprint } = JSON.parse(io.out)
 * ```
 */
export const capture = (): CapturedIo => {
  let out = ""
  let err = ""
  return {
    stdout: (text) => {
      out += text
    },
    stderr: (text) => {
      err += text
    },
    get out() {
      return out
    },
    get err() {
      return err
    }
  }
}
