import { describe, expect, it } from "vitest";
import { ConfigError, defaultLimits, loadConfig } from "../../../src/server/config";

describe("loadConfig", () => {
  it("fills the documented defaults, resolving paths against the working directory", () => {
    const config = loadConfig({}, "/srv/fedward");

    expect(config).toEqual({
      port: 8080,
      host: "127.0.0.1",
      dataDir: "/srv/fedward/.fedward-data",
      databaseUrl: undefined,
      publicUrl: undefined,
      appDir: "/srv/fedward/dist",
      demoPlanPath: "/srv/fedward/public/demo/wdbc-plan.json",
      demoSites: 3,
      corsOrigins: "*",
      logLevel: "warn",
      limits: defaultLimits,
    });
  });

  it("reads every variable", () => {
    const config = loadConfig(
      {
        PORT: "9000",
        HOST: "0.0.0.0",
        DATA_DIR: "/var/lib/fedward",
        DATABASE_URL: "postgres://u:p@db/fedward",
        PUBLIC_URL: "https://fl.example.org/",
        APP_DIR: "build",
        DEMO_PLAN: "plans/x.json",
        DEMO_SITES: "5",
        CORS_ORIGINS: "https://a.example.org, http://localhost:5173/",
        LOG_LEVEL: "info",
      },
      "/srv",
    );

    expect(config).toMatchObject({
      port: 9000,
      host: "0.0.0.0",
      dataDir: "/var/lib/fedward",
      databaseUrl: "postgres://u:p@db/fedward",
      publicUrl: "https://fl.example.org",
      appDir: "/srv/build",
      demoPlanPath: "/srv/plans/x.json",
      demoSites: 5,
      corsOrigins: ["https://a.example.org", "http://localhost:5173"],
      logLevel: "info",
    });
  });

  it("names every bad variable and what to set it to", () => {
    const load = () =>
      loadConfig({
        PORT: "80a",
        DEMO_SITES: "0",
        DATABASE_URL: "mysql://x",
        PUBLIC_URL: "fl.example.org",
        CORS_ORIGINS: "ftp://x",
        LOG_LEVEL: "loud",
      });

    expect(load).toThrow(ConfigError);
    const message = (() => {
      try {
        load();
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    for (const name of ["PORT", "DEMO_SITES", "DATABASE_URL", "PUBLIC_URL", "CORS_ORIGINS", "LOG_LEVEL"]) {
      expect(message).toContain(name);
    }
    expect(message).toContain('PORT is "80a"; set it to a whole number from 0 to 65535');
  });
});
