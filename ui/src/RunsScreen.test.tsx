import { describe, expect, it } from "vitest";
import { scheduleOf } from "./RunsScreen";

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
