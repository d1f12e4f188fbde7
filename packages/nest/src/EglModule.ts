/**
 * The NestJS module of EGL: builds the gate once from `{ governance, identity }` and provides it to governed handlers.
 * @module
 */
import { ConfigurableModuleBuilder, Module } from "@nestjs/common"
import { Gate } from "@egl/core"

/** Options of {@link EglModule}: the governance instance (`createGovernance`) and the identity resolver. */
export type EglModuleOptions = Gate.GateOptions

/** Injection token of the {@link Gate.Gate} every governed handler of the module goes through. */
export const EGL_GATE: unique symbol = Symbol.for("@egl/nest/Gate")

const definition = new ConfigurableModuleBuilder<EglModuleOptions>({ moduleName: "Egl" })
  .setClassMethodName("forRoot")
  .setExtras({ isGlobal: false }, (module, extras) => ({ ...module, global: extras.isGlobal }))
  .build()

/** Injection token of the options given to `forRoot` / returned by `forRootAsync`'s factory. */
export const EGL_MODULE_OPTIONS = definition.MODULE_OPTIONS_TOKEN

/** What `EglModule.forRoot` takes: the options plus `isGlobal`. */
export type EglModuleForRootOptions = typeof definition.OPTIONS_TYPE

/** What `EglModule.forRootAsync` takes: `useFactory` + `inject`, `useClass` or `useExisting`, plus `isGlobal`. */
export type EglModuleAsyncOptions = typeof definition.ASYNC_OPTIONS_TYPE

/**
 * Provides the gate to `@Governed()` handlers. Import it in the module whose controllers are governed, or once with
 * `isGlobal: true`. A configuration that cannot work (`Gate.GateConfigInvalid`) fails the application's start.
 *
 * The governance instance belongs to the application: close it (`governance.close()`) on shutdown, e.g. from
 * `onApplicationShutdown` with the gate injected through {@link EGL_GATE}.
 *
 * @example
 * ```ts
 * const governance = await createGovernance({ registry, policy, ledger: { file: "./ledger.jsonl" } })
 * @Module({
 *   imports: [EglModule.forRoot({ governance, identity: Identity.fromBearerToken(keys) })],
 *   controllers: [ServingController]
 * })
 * class AppModule {}
 *
 * // or, with the configuration from other providers
 * EglModule.forRootAsync({
 *   inject: [ConfigService],
 *   useFactory: async (config: ConfigService) => ({
 *     governance: await createGovernance(config.get("egl")),
 *     identity: Identity.fromBearerToken(config.get("apiKeys"))
 *   })
 * })
 * ```
 */
@Module({
  providers: [
    {
      provide: EGL_GATE,
      useFactory: (options: EglModuleOptions): Gate.Gate => Gate.make(options),
      inject: [definition.MODULE_OPTIONS_TOKEN]
    }
  ],
  exports: [EGL_GATE]
})
export class EglModule extends definition.ConfigurableModuleClass {}
