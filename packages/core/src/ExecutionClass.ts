/**
 * Execution classes and capability tiers (SPEC §4, seed 002 §2).
 *
 * | class        | tier floor | cacheable by default | direct 0→2 jump |
 * |--------------|-----------:|:--------------------:|:---------------:|
 * | `transform`  | 0          | yes                  | no              |
 * | `file`       | 1          | no                   | no              |
 * | `network`    | 2          | no                   | no              |
 * | `ai`         | 2          | no                   | yes             |
 * | `privileged` | 3          | never                | no              |
 * @module
 */
import { Schema } from "effect"

/** Capability tier: 0 pure, 1 workspace IO, 2 external interaction, 3 privileged. */
export const Tier = Schema.Literals([0, 1, 2, 3])
/** @see Tier */
export type Tier = typeof Tier.Type

/** The five execution classes. */
export const ExecutionClass = Schema.Literals(["transform", "file", "network", "ai", "privileged"])
/** @see ExecutionClass */
export type ExecutionClass = typeof ExecutionClass.Type

/** Per-class defaults a registry may override. */
export interface ClassProfile {
  /** The lowest tier an action of this class runs at. */
  readonly floor: Tier
  /** Whether actions of the class are cache-eligible unless they opt out. */
  readonly cacheable: boolean
  /** Whether an escalation may jump more than one tier in one request. */
  readonly directJump: boolean
}

/** Default class profiles (seed 002 §2.1, §2.3 rule 4, §5.1). */
export const defaultClassProfiles: Readonly<Record<ExecutionClass, ClassProfile>> = {
  transform: { floor: 0, cacheable: true, directJump: false },
  file: { floor: 1, cacheable: false, directJump: false },
  network: { floor: 2, cacheable: false, directJump: false },
  ai: { floor: 2, cacheable: false, directJump: true },
  privileged: { floor: 3, cacheable: false, directJump: false }
}

/** The tier of the higher of two tiers. */
export const maxTier = (a: Tier, b: Tier): Tier => (a >= b ? a : b)
