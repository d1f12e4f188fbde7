/**
 * `@egl/nest`: the NestJS adapter of the Execution Governance Layer. Every decision is made by `@egl/core`'s gate; this
 * package maps a Nest request to it and its answer back to Nest (`HttpException`, problem bodies).
 * @module
 */
export { EglGuard } from "./EglGuard.ts"
export { EglInterceptor } from "./EglInterceptor.ts"
export {
  EGL_GATE,
  EGL_MODULE_OPTIONS,
  EglModule,
  type EglModuleAsyncOptions,
  type EglModuleForRootOptions,
  type EglModuleOptions
} from "./EglModule.ts"
export { EglProblemException } from "./EglProblemException.ts"
export { EglProblemFilter, problemOf } from "./EglProblemFilter.ts"
export { Envelope } from "./Envelope.ts"
export { Governed } from "./Governed.ts"
