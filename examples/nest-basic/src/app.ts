/**
 * A small NestJS service governed by `@egl/nest`: `POST /serving/deploy_model` behind `@Governed()`, and
 * `GET /ledger/verify` to check the tamper-evident ledger. Memory ledger.
 * @module
 */
import {
  Controller,
  Get,
  Inject,
  Module,
  Post,
  type INestApplication,
  type OnApplicationShutdown
} from "@nestjs/common"
import { APP_FILTER, NestFactory } from "@nestjs/core"
import { createGovernance, Identity, type Envelope as CoreEnvelope, type Gate } from "@egl/core"
import { EGL_GATE, EglModule, EglProblemFilter, Envelope, Governed } from "@egl/nest"
import { ACTION, apiKeys, deployModel, policy, registry } from "./ServingTool.ts"

@Controller()
class ServingController {
  // Explicit tokens everywhere: tsx (esbuild) emits no decorator metadata.
  constructor(@Inject(EGL_GATE) private readonly gate: Gate.Gate) {}

  @Post("serving/deploy_model")
  @Governed(ACTION, deployModel)
  deploy(@Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    // Admitted: deploy with `envelope.granted` (tier, resources, pool), never with what was asked for.
    return { envelope }
  }

  @Get("ledger/verify")
  verify() {
    return this.gate.governance.verifyLedger()
  }
}

@Module({
  imports: [
    EglModule.forRootAsync({
      useFactory: async () => ({
        governance: await createGovernance({ registry, policy, ledger: "memory" }),
        identity: Identity.fromBearerToken(apiKeys)
      })
    })
  ],
  controllers: [ServingController],
  // Malformed JSON and bodies over the limit are answered as problems too (the body parser runs before any route).
  providers: [{ provide: APP_FILTER, useClass: EglProblemFilter }]
})
class AppModule implements OnApplicationShutdown {
  constructor(@Inject(EGL_GATE) private readonly gate: Gate.Gate) {}

  async onApplicationShutdown() {
    await this.gate.governance.close()
  }
}

/** Creates the application (not yet listening); `app.close()` flushes and closes the ledger. */
export const createApp = (options?: { readonly logger?: boolean }): Promise<INestApplication> =>
  NestFactory.create(AppModule, options?.logger === true ? {} : { logger: false })
