/**
 * Validation of this package's options: a configuration that cannot work is refused when the store, queue or worker is
 * built, never per request.
 * @module
 */
import { Schema } from "effect"

/** The options of a Redis store, queue or worker cannot work; `detail` names the option. */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("RedisConfigInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid @egl/redis configuration: ${this.detail}`
  }
}

/** Throws {@link ConfigInvalid} unless `value` is undefined or a positive finite number. */
export const positiveOrUndefined = (name: string, value: unknown): void => {
  if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw new ConfigInvalid({ detail: `${name} must be a positive number` })
  }
}

/** Throws {@link ConfigInvalid} unless `value` is undefined or a non-empty string. */
export const nonEmptyOrUndefined = (name: string, value: unknown): void => {
  if (value !== undefined && !(typeof value === "string" && value.length > 0)) {
    throw new ConfigInvalid({ detail: `${name} must be a non-empty string` })
  }
}
