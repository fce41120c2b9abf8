import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { SchemaScreen } from "./SchemaScreen";
import type { SchemaReview } from "./bindings";

const review: SchemaReview = {
  prisma: 'datasource db {\n  provider = "postgresql"\n}\n',
  prisma_config: 'export default defineConfig({ datasource: { url: env("DATABASE_URL") } });\n',
  prisma_6: 'datasource db {\n  provider = "postgresql"\n  url      = env("DATABASE_URL")\n}\n',
  errors: [],
  tables: [],
};

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("schema screen", () => {
  it("shows the Prisma 7 schema with its prisma.config.ts, and the Prisma 6 schema by the setting", async () => {
    mockIPC((cmd) => {
      if (cmd === "schema_review") return review;
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<SchemaScreen pipeline="Demo" />);
    await waitFor(() => expect(screen.getByTestId("prisma-config").textContent).toContain("DATABASE_URL"));
    expect(screen.getByTestId("prisma").textContent).not.toContain("url");
    fireEvent.change(screen.getByTestId("prisma-version"), { target: { value: "6" } });
    expect(screen.getByTestId("prisma").textContent).toContain('env("DATABASE_URL")');
    expect(screen.queryByTestId("prisma-config")).toBeNull();
  });
});
