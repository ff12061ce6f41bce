// The seed's image code (src/handlers/imageProcessor.ts), minus S3/DynamoDB: three decodes of the same buffer
// (metadata, cover 200x200 q80, inside 800x800 q90). Driven by run.py over stdin/stdout, one JSON per line:
//   {"cmd": "time", "file": path, "n": 3}      -> {"ms": [..], "cpuMs": mean CPU ms of all threads per run}
//   {"cmd": "write", "file": path, "out": dir}  -> {"thumbnail": path, "medium": path}
// `node sharp_worker.js once <file> <n>` runs the pipeline n times and prints {"peakRssKiB": ...}.
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const sharp = require(path.join(__dirname, "node_modules", "sharp"));

// libvips' operation cache would serve repeated runs on the same buffer from memory; a Lambda sees each upload
// once, so the cache is off. Threads stay at sharp's default (one per core), as the seed ran.
sharp.cache(false);

async function seedPipeline(imageBuffer) {
  const metadata = await sharp(imageBuffer).metadata();
  const thumbnail = await sharp(imageBuffer).resize(200, 200, { fit: "cover" }).jpeg({ quality: 80 }).toBuffer();
  const medium = await sharp(imageBuffer).resize(800, 800, { fit: "inside" }).jpeg({ quality: 90 }).toBuffer();
  return { metadata, thumbnail, medium };
}

async function handle(request) {
  const buffer = fs.readFileSync(request.file);
  if (request.cmd === "time") {
    const ms = [];
    const cpuStart = process.cpuUsage();
    for (let i = 0; i < request.n; i++) {
      const start = process.hrtime.bigint();
      await seedPipeline(buffer);
      ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const cpu = process.cpuUsage(cpuStart);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000 / request.n };
  }
  if (request.cmd === "write") {
    const { thumbnail, medium } = await seedPipeline(buffer);
    const base = path.join(request.out, path.basename(request.file));
    fs.writeFileSync(`${base}.sharp.thumbnail.jpg`, thumbnail);
    fs.writeFileSync(`${base}.sharp.medium.jpg`, medium);
    return { thumbnail: `${base}.sharp.thumbnail.jpg`, medium: `${base}.sharp.medium.jpg` };
  }
  throw new Error(`unknown command ${request.cmd}`);
}

async function main() {
  if (process.argv[2] === "once") {
    const buffer = fs.readFileSync(process.argv[3]);
    for (let i = 0; i < Number(process.argv[4] || 1); i++) await seedPipeline(buffer);
    // VmHWM is this process's own peak RSS (getrusage's maxrss would include the parent's pre-exec fork).
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    process.stdout.write(JSON.stringify({ peakRssKiB: Number(hwm[1]) }) + "\n");
    return;
  }
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const answer = await handle(JSON.parse(line));
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
