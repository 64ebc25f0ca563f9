// The Docker calls of tools built on dockerode, made the way their sources make
// them, against the socket in DOCKER_SOCKET (tests/test_e2e_preset_tools.py):
//
//   node dockerode_calls.js TOOL CONTAINER
//
// TOOL is homepage, wud or homarr (through dockerode), or uptime-kuma or beszel
// (plain HTTP requests on the socket, as their sources write them: Uptime Kuma
// through axios, Beszel's agent through Go's net/http); CONTAINER a running
// container's name. Each
// call's source file is in tests/traces/TOOL.toml. Errors of calls the daemon
// cannot serve (Swarm calls on a daemon without Swarm) are printed and ignored:
// what matters is what dockguard decided. Prints "done" at the end.
"use strict";
const http = require("http");
const Docker = require("dockerode");

const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET });
const [tool, name] = process.argv.slice(2);

async function quietly(what, call) {
  try {
    await call();
  } catch (err) {
    console.log(`${what}: ${err.statusCode || ""} ${err.message.split("\n")[0]}`);
  }
}

async function events(options) {
  // a stream: open it, then close it
  const stream = await docker.getEvents(options);
  stream.destroy();
}

function get(path) {
  return new Promise((resolve, reject) => {
    const request = http.get({ socketPath: process.env.DOCKER_SOCKET, path }, (response) => {
      response.resume();
      response.on("end", () =>
        response.statusCode < 400 ? resolve() : reject(new Error(`${response.statusCode} for ${path}`)),
      );
    });
    request.on("error", reject);
  });
}

const tools = {
  // louislam/uptime-kuma server/docker.js, server/model/monitor.js
  async "uptime-kuma"() {
    await get("/containers/json?all=true");
    await get(`/containers/${name}/json`);
  },
  // henrygd/beszel agent/docker.go
  async beszel() {
    await get("/containers/json");
    await get(`/containers/${name}/stats?stream=0&one-shot=1`);
    await get("/version");
    await get("/info");
    await get(`/containers/${name}/json`);
    await get(`/containers/${name}/logs?stderr=1&stdout=1&tail=200`);
  },
  // gethomepage/homepage src/pages/api/docker/{stats,status}/[...service].js, src/utils/config/service-helpers.js
  async homepage() {
    await docker.listContainers({ all: true });
    const container = docker.getContainer(name);
    await container.stats({ stream: false });
    await container.inspect();
    await quietly("listServices", () => docker.listServices({ filters: { label: ["homepage.group"] } }));
    await quietly("getService", () => docker.getService(name).inspect());
    await quietly("listTasks", () =>
      docker.listTasks({ filters: { service: [name], "desired-state": ["running"] } }),
    );
  },
  // getwud/wud app/watchers/providers/docker/Docker.ts
  async wud() {
    const containers = await docker.listContainers({});
    await docker.getImage(containers[0].ImageID).inspect();
    await events({ filters: { type: ["container"] } });
    await docker.getContainer(containers[0].Id).inspect();
  },
  // homarr-labs/homarr packages/request-handler/src/docker.ts, packages/api/src/router/docker/docker-router.ts
  async homarr() {
    await docker.listContainers({ all: true });
    const container = docker.getContainer(name);
    await container.inspect();
    await container.stats({ stream: false, "one-shot": true });
    await container.logs({ follow: false, stdout: true, stderr: true, tail: 200 });
    const stream = await container.logs({ follow: true, stdout: true, stderr: true, tail: 200 });
    stream.destroy();
    await container.restart();
    await container.stop();
    await container.start();
    await container.stop();
    await container.remove();
  },
};

tools[tool]().then(
  () => console.log("done"),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
