export { Agent, register } from "./agent";
export { Encoder, Decoder } from "./codec";
export { clockNow, randBytes, randU64, log, walletBalance, nodePrice, emit } from "./hostcalls";
export { EffectLog, Intent, IntentState } from "./effects";
