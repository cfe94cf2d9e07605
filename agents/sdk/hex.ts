// Lower-case hex, as igor's demo agents put a receipt in the `X-Payment` header.

const HEX_DIGITS = "0123456789abcdef";

/** `data` as lower-case hex, two digits a byte (an `X-Payment` header carries a receipt so). */
export function toHex(data: Uint8Array): string {
  const parts = new Array<string>(data.length);
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    parts[i] = HEX_DIGITS.charAt(b >> 4) + HEX_DIGITS.charAt(b & 0x0f);
  }
  return parts.join("");
}
