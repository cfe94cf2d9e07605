import type { IncomingMessage, Server, ServerResponse } from "node:http";

export const RECEIPT_FIXED_BYTES: number;
export const MAX_PAYMENT_HEADER_CHARS: number;
export interface Terms { amount: bigint; recipient: string; memo: string }
export interface PaymentReceipt {
  amount: bigint;
  timestampNs: bigint;
  recipient: string;
  memo: string;
  publicKey: Buffer;
  signed: Buffer;
  signature: Buffer;
}
export type Verdict =
  | { ok: true; receipt: PaymentReceipt; id: string }
  | { ok: false; status: number; reason: "malformed" | "bad_signature" | "wrong_terms" | "replayed"; detail: string };
export function parseAddr(addr: string): { host: string | undefined; port: number };
export function encodePaymentTerms(amount: bigint | number, recipient: string, memo: string): Buffer;
export function parseReceipt(buf: Buffer): PaymentReceipt | null;
export function weakPublicKey(bytes: Uint8Array): boolean;
export class ReceiptChecker {
  constructor(terms: Terms);
  check(header: string): Verdict;
}
export interface StartOptions { addr?: string; host?: string; port?: number; log?: (line: string) => void }
export interface Started { server: Server; port: number; close(): Promise<void> }
export function listen(
  name: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  o: StartOptions,
): Promise<Started>;
