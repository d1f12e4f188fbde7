/**
 * The NestJS server of the adapter benchmark, on the Express platform (`@nestjs/platform-express`, Nest's default body
 * parser): one controller whose handler is the trivial handler, with `@Governed("serving.deploy_model",
 * deployModelRoute)` and `EglModule.forRoot({ governance, identity })` when governed, and without both when plain.
 */
import type { AddressInfo } from "node:net"
import { Body, Controller, Module, Post, type Type } from "@nestjs/common"
import { NestFactory } from "@nestjs/core"
import { EglModule, Governed } from "@egl/nest"
import { DeployModel } from "@egl/serving-api"
import { reply, type DeployBody } from "./adapter-request.ts"
import type { ServerModule } from "./adapter-server.ts"

@Controller("serving")
class PlainController {
  @Post("deploy_model")
  deploy(@Body() body: DeployBody) {
    return reply(body)
  }
}

@Controller("serving")
class GovernedController {
  @Post("deploy_model")
  @Governed(DeployModel.ACTION, DeployModel.deployModelRoute)
  deploy(@Body() body: DeployBody) {
    return reply(body)
  }
}

export const serve: ServerModule["serve"] = async (governance, identity) => {
  let root: Type
  if (governance === undefined) {
    @Module({ controllers: [PlainController] })
    class PlainModule {}
    root = PlainModule
  } else {
    @Module({ imports: [EglModule.forRoot({ governance, identity })], controllers: [GovernedController] })
    class GovernedModule {}
    root = GovernedModule
  }
  const app = await NestFactory.create(root, { logger: false })
  await app.listen(0, "127.0.0.1")
  return {
    port: (app.getHttpServer().address() as AddressInfo).port,
    close: () => app.close()
  }
}
