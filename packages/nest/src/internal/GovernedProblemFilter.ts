/**
 * The problem filter `@Governed()` puts on a handler: narrowed to `EglProblemException`, so every other exception of the
 * handler still reaches the application's own filters.
 * @module
 */
import { Catch } from "@nestjs/common"
import { EglProblemException } from "../EglProblemException.ts"
import { EglProblemFilter } from "../EglProblemFilter.ts"

/** {@link EglProblemFilter} for EGL's own refusals only. */
@Catch(EglProblemException)
export class GovernedProblemFilter extends EglProblemFilter {}
