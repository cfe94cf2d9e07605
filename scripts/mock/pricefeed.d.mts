import type { StartOptions, Started } from "./common.mjs";

export const PRICEFEED_DEFAULT_ADDR: string;
export function startPricefeed(o?: StartOptions): Promise<
  Started & { prices: Record<"bitcoin" | "ethereum", number>; requests(): number }
>;
