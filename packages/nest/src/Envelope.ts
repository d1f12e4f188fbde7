/**
 * `@Envelope()`: the admitted execution envelope as a handler parameter.
 * @module
 */
import { createParamDecorator, type ExecutionContext } from "@nestjs/common"
import type { Envelope as CoreEnvelope } from "@egl/core"
import { ADMISSION, type GovernedRequest } from "./internal/GovernedMetadata.ts"

/**
 * Injects the sealed {@link CoreEnvelope.ExecutionEnvelope} the request was admitted with (its grant, decision and
 * ledger position). Only on `@Governed()` handlers: elsewhere it throws, as there is no envelope to give.
 *
 * @example
 * ```ts
 * @Post("deploy_model")
 * @Governed("serving.deploy_model", deployModelRoute)
 * deploy(@Envelope() envelope: ExecutionEnvelope) {
 *   return { envelope }
 * }
 * ```
 */
export const Envelope = createParamDecorator(
  (_data: unknown, context: ExecutionContext): CoreEnvelope.ExecutionEnvelope => {
    const admission = context.switchToHttp().getRequest<GovernedRequest>()[ADMISSION]
    if (admission === undefined) throw new Error("@Envelope() is only available on @Governed() handlers")
    return admission.entry.envelope
  }
)
