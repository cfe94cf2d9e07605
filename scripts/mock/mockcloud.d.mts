import type { StartOptions, Started, Terms } from "./common.mjs";

export const MOCKCLOUD_DEFAULT_ADDR: string;
export const MOCKCLOUD_TERMS: Readonly<Terms>;
export const MAX_DEPLOY_BODY_BYTES: number;
export interface Deployment { id: string; wasmHash: string; budgetOffer: number; status: string; queries: number }
export function startMockcloud(o?: StartOptions): Promise<
  Started & { deployments: Map<string, Deployment>; stats: { payments402: number; refused: Record<string, number> } }
>;
