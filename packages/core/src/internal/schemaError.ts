import type { Schema } from "effect"

/**
 * Formats a Schema decoding error for a list of named items (rules of a policy, tools of a registry): prefixes the
 * message with the item's name when the failing path points into `listKey`, so a load error names what is wrong.
 */
export const formatSchemaError = (
  error: Schema.SchemaError,
  input: unknown,
  listKey: string,
  nameKey: string
): string => {
  const message = error.message
  const issue = error.issue as unknown as { path?: ReadonlyArray<PropertyKey> }
  const path = findPath(issue) ?? []
  if (path[0] === listKey && typeof path[1] === "number") {
    const list = (input as Record<string, unknown> | null)?.[listKey]
    const item = Array.isArray(list) ? (list[path[1]] as Record<string, unknown> | undefined) : undefined
    const name = typeof item?.[nameKey] === "string" ? `"${item[nameKey]}"` : `#${path[1]}`
    return `${listKey.replace(/s$/, "")} ${name}: ${message}`
  }
  return message
}

const findPath = (issue: unknown): ReadonlyArray<PropertyKey> | undefined => {
  let current = issue as
    { _tag?: string; path?: ReadonlyArray<PropertyKey>; issue?: unknown; issues?: ReadonlyArray<unknown> } | undefined
  const path: Array<PropertyKey> = []
  while (current !== undefined) {
    if (current._tag === "Pointer" && current.path !== undefined) path.push(...current.path)
    if (current.issue !== undefined) current = current.issue as typeof current
    else if (current.issues !== undefined && current.issues.length > 0) current = current.issues[0] as typeof current
    else break
  }
  return path.length > 0 ? path : undefined
}
