import type { PaymentReceipt, StartOptions, Started, Terms } from "./common.mjs";

export const PAYWALL_DEFAULT_ADDR: string;
export const PAYWALL_TERMS: Readonly<Terms>;
export function startPaywall(o?: StartOptions): Promise<
  Started & { stats: { payments402: number; delivered: number; refused: Record<string, number>; lastAccepted: string | null; accepted: PaymentReceipt[] } }
>;
