import type { Command } from "commander";
import { registerDev } from "./dev.js";
import { registerSvixStandIn } from "./svix-stand-in.js";

/**
 * The commands for a clone of the repository, not for production: the local stack and the Svix
 * stand-in. tsconfig.build.json leaves this file and src/local/ out of dist/, so the image carries
 * none of it; src/cli.ts loads it when it is there (under tsx, `npm run dev`).
 */
export function registerLocalCommands(program: Command): void {
  registerDev(program);
  registerSvixStandIn(program);
}
