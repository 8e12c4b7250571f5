// Browser (and bundler) entry: fetches iocsieve_js_bg.wasm next to this file, then the API
// is ready to use.
import init from "./iocsieve_js.js";

await init({ module_or_path: new URL("./iocsieve_js_bg.wasm", import.meta.url) });

export * from "./core.js";
