// The package's TypeScript declarations: types.ts, written against index.d.ts, compiles.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { repoDir } from "./cases.mjs";

test("index.d.ts types the API as the tests use it", () => {
  const tsc = join(repoDir, "js/node_modules/.bin/tsc");
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
    "--moduleResolution", "nodenext", "--types", "", join(repoDir, "js/test/types.ts")];
  const run = spawnSync(tsc, args, { cwd: join(repoDir, "js"), encoding: "utf8" });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
