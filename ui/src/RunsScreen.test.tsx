import { describe, expect, it } from "vitest";
import { scheduleOf, stagesText } from "./RunsScreen";

describe("schedule editor", () => {
  it("writes the draft as the pipeline file's [schedule], leaving out what is not set", () => {
    const base = { enabled: true, cron: "0 19 * * *", timezone: "Europe/Berlin", windowed: true, start: "19:00", end: "07:00", days: "3" };
    expect(scheduleOf(base)).toEqual({
      cron: "0 19 * * *",
      timezone: "Europe/Berlin",
      window: { start: "19:00", end: "07:00" },
      days_to_complete: 3,
    });
    expect(scheduleOf({ ...base, windowed: false, days: "" })).toEqual({ cron: "0 19 * * *", timezone: "Europe/Berlin" });
    expect(scheduleOf({ ...base, enabled: false })).toBeNull();
  });
});

describe("run history", () => {
  it("says where a run's time went, stage by stage", () => {
    expect(stagesText({ batches: 12, fetch_ms: 1234, transform_ms: 400, ingest_ms: 2049 })).toBe(
      "fetch 1.2 s · transform 0.4 s · ingest 2.0 s (12 batches)",
    );
    expect(stagesText({ batches: 0, fetch_ms: 0, transform_ms: 0, ingest_ms: 0 })).toBe("no batches");
  });
});
