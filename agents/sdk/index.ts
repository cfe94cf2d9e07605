export { Agent, register } from "./agent";
export { Encoder, Decoder } from "./codec";
export { clockNow, randBytes, randU64, log, walletBalance, nodePrice, emit } from "./hostcalls";
export { EffectLog, Intent, IntentState, EFFECT_OK, EFFECT_EXISTS, EFFECT_NOT_FOUND, EFFECT_INVALID_TRANSITION } from "./effects";
export {
  HttpResponse, httpRequest, httpRequestLines, httpGet, httpPost, headerLines, httpErrorName,
  HTTP_ERR_TRANSPORT, HTTP_ERR_INPUT_TOO_LONG, HTTP_ERR_HOST_BLOCKED, HTTP_ERR_TIMEOUT,
  HTTP_ERR_RESPONSE_TOO_LARGE, HTTP_ERR_TRUNCATED,
} from "./http";
export {
  Payment, PaymentTerms, PaymentReceipt, NodeReceipt, walletPay, walletReceiptCount, walletReceipt, findReceipt, receiptMark, ReceiptMark, ReceiptLookup, ReceiptSearch, payErrorName,
  PAY_ERR_INSUFFICIENT_BUDGET, PAY_ERR_INPUT_TOO_LONG, PAY_ERR_RECIPIENT_BLOCKED,
  PAY_ERR_AMOUNT_EXCEEDED, PAY_ERR_BUFFER_TOO_SMALL, PAY_ERR_PROCESSING, PAY_ERR_TRUNCATED,
  WALLET_ERR_BAD_INDEX, WALLET_ERR_BUFFER_TOO_SMALL, WALLET_ERR_UNANSWERED,
} from "./payments";
export { toHex } from "./hex";
