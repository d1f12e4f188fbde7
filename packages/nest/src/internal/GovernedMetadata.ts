/**
 * What `@Governed()` leaves on a controller or handler, and what the guard leaves on an admitted request: shared by the
 * decorator, the guard, the interceptor and `@Envelope()`, kept here so none of them imports another.
 * @module
 */
import { Reflector } from "@nestjs/core"
import type { Gate } from "@egl/core"

/** The qualified action and route options of a governed controller or handler. */
export interface GovernedSpec {
  readonly action: string
  readonly route: Gate.RouteOptions<any, any> | undefined
}

/** The metadata decorator read with `reflector.getAllAndOverride(GovernedMetadata, [handler, class])`. */
export const GovernedMetadata = Reflector.createDecorator<GovernedSpec>()

/** An admitted request's entry, and whether an interceptor already owns its outcome. */
export interface Admission {
  readonly entry: Gate.Entry
  intercepted: boolean
}

/** Where the guard stores the {@link Admission} on the framework's request object. */
export const ADMISSION: unique symbol = Symbol.for("@egl/nest/Admission")

/** The request object as the guard, interceptor and `@Envelope()` see it. */
export interface GovernedRequest {
  readonly method?: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body?: unknown
  [ADMISSION]?: Admission
}
