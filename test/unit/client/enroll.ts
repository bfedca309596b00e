import { CoordinatorClient } from "../../../src/client/coordinator";
import { type Plan, planHash } from "../../../src/core/plan";
import type { EnrollmentRow, FedwardDb } from "../../../src/store/db";
import type { TestApp } from "../server/helpers";

/**
 * A federation of `plan` with one invite per label, each enrolled against the coordinator at `baseUrl` as
 * the page does; the first site's enrollment is stored in `db` (the page under test), the others are
 * returned for sites played from Node.
 */
export async function enrollSites(
  server: TestApp,
  baseUrl: string,
  db: FedwardDb,
  plan: Plan,
  labels = ["Site A"],
): Promise<EnrollmentRow[]> {
  const { invites } = await server.storage.createFederation(plan, labels);
  const enrollments: EnrollmentRow[] = [];
  for (const invite of invites) {
    const res = await new CoordinatorClient(baseUrl).enroll(invite.code);
    enrollments.push({
      federationId: res.federationId,
      coordinatorUrl: baseUrl,
      siteId: res.siteId,
      siteLabel: res.siteLabel,
      token: res.token,
      plan,
      planHash: await planHash(plan),
      enrolledAt: Date.now(),
    });
  }
  await db.enrollments.put(enrollments[0] as EnrollmentRow);
  return enrollments;
}
