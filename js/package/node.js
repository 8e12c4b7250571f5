// Node.js entry: compiles iocsieve_js_bg.wasm from the package folder, then the API is
// ready to use.
import { readFileSync } from "node:fs";
import { initSync } from "./iocsieve_js.js";

initSync({ module: readFileSync(new URL("./iocsieve_js_bg.wasm", import.meta.url)) });

export * from "./core.js";
