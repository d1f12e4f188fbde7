/**
 * The guard of governed handlers: admits the request through the gate, or refuses it with the gate's problem.
 * @module
 */
import { Dependencies, Injectable, type CanActivate, type ExecutionContext } from "@nestjs/common"
import { Reflector } from "@nestjs/core"
import { Gate, Identity } from "@egl/core"
import { EGL_GATE } from "./EglModule.ts"
import { EglProblemException } from "./EglProblemException.ts"
import { ADMISSION, GovernedMetadata, type GovernedRequest, type GovernedSpec } from "./internal/GovernedMetadata.ts"

/** The Node.js response, for the safety net that records an outcome nothing else recorded. */
interface ClosingResponse {
  readonly statusCode?: number
  once?(event: "close", listener: () => void): unknown
}

/**
 * Admits a governed request: resolves the subject from the request's headers with the gate's identity resolver (never
 * from a client-set identity header), decodes and maps the body with the route's options, and admits and dispatches it.
 * A refusal is thrown as an {@link EglProblemException} (the handler does not run); an admission is stored on the
 * request for {@link EglInterceptor} and `@Envelope()`.
 *
 * Applied by `@Governed()`; each governed route is built once, on its first request. Needs {@link EGL_GATE} in the
 * controller's module (import {@link EglModule}).
 */
// @Dependencies, a class decorator, rather than design:paramtypes or @Inject() on parameters: the source then works
// under any transpiler (esbuild, so tsx, emits no metadata and, for files outside its tsconfig, no legacy decorators).
@Injectable()
@Dependencies(Reflector, EGL_GATE)
export class EglGuard implements CanActivate {
  /** One route per `@Governed()` application (its metadata object), built on first use. */
  private readonly routes = new WeakMap<GovernedSpec, Gate.Route>()

  constructor(
    private readonly reflector: Reflector,
    private readonly gate: Gate.Gate
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const spec = this.reflector.getAllAndOverride(GovernedMetadata, [context.getHandler(), context.getClass()])
    // Fail closed: this guard without its @Governed() metadata, or outside HTTP, admits nothing.
    if (spec === undefined) throw new Error("EglGuard is applied by @Governed(action): the handler has no action")
    if (context.getType() !== "http") throw new Error(`@Governed() governs HTTP handlers, not ${context.getType()}`)
    const http = context.switchToHttp()
    const request = http.getRequest<GovernedRequest>()
    // A controller's and a handler's @Governed() both apply this guard: the request is admitted once.
    if (request[ADMISSION] !== undefined) return true
    const result = await this.routeOf(spec).enter(Identity.fromNodeHeaders(request.headers), request.body, request)
    if (!result.ok) throw new EglProblemException(result.problem, result.error)
    const admission = { entry: result, intercepted: false }
    request[ADMISSION] = admission
    // A later guard or interceptor refusing ends the request before EglInterceptor owns its outcome: record that
    // outcome when the response closes, so the execution is in the ledger and its pool slot is released.
    const response = http.getResponse<ClosingResponse>()
    response.once?.("close", () => {
      if (admission.intercepted) return
      result
        .finish({ statusCode: response.statusCode ?? 500, error: "the request ended before the governed handler ran" })
        .catch(() => undefined)
    })
    return true
  }

  private routeOf(spec: GovernedSpec): Gate.Route {
    let route = this.routes.get(spec)
    if (route === undefined) {
      route = Gate.route(this.gate, spec.action, spec.route)
      this.routes.set(spec, route)
    }
    return route
  }
}
