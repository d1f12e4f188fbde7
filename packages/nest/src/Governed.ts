/**
 * `@Governed(action)`: puts a controller or handler behind EGL's admission.
 * @module
 */
import { applyDecorators, UseFilters, UseGuards, UseInterceptors } from "@nestjs/common"
import { Gate } from "@egl/core"
import { EglGuard } from "./EglGuard.ts"
import { EglInterceptor } from "./EglInterceptor.ts"
import { GovernedMetadata } from "./internal/GovernedMetadata.ts"
import { GovernedProblemFilter } from "./internal/GovernedProblemFilter.ts"

/**
 * Governs a handler, or every handler of a controller, as the qualified action `tool.action` (e.g.
 * `serving.deploy_model`): {@link EglGuard} admits the request through the gate of {@link EglModule} before the handler
 * runs, {@link EglInterceptor} records its outcome before the response leaves, and a refusal is answered as a problem
 * body (`application/problem+json`). A handler's own `@Governed()` overrides its controller's.
 *
 * `route` is `Gate.RouteOptions`: the body's Schema (a body that does not decode is `400 INVALID_REQUEST` with its
 * issues) and the mapper from the decoded body (and the request, as `context`) to the admission's scope, input and
 * requested resources. Without it the body itself is `{ scope, input?, requested? }`.
 *
 * Throws `Gate.GateConfigInvalid` at once when `action` is not qualified or `route` is not Schema + function.
 *
 * @example
 * ```ts
 * @Controller("serving")
 * class ServingController {
 *   @Post("deploy_model")
 *   @Governed("serving.deploy_model", { body: DeployModelBody, request: toAdmission })
 *   deploy(@Envelope() envelope: ExecutionEnvelope) {
 *     return { envelope }
 *   }
 * }
 * ```
 */
export const Governed = <Body = unknown, Context = unknown>(
  action: string,
  route?: Gate.RouteOptions<Body, Context>
): ClassDecorator & MethodDecorator => {
  Gate.checkRoute(action, route)
  return applyDecorators(
    GovernedMetadata({ action, route }),
    UseGuards(EglGuard),
    UseInterceptors(EglInterceptor),
    UseFilters(GovernedProblemFilter)
  )
}
