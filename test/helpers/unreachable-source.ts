// A target whose questions to a source about a handoff fail as if the source were unreachable
// (its pending receptions stay unresolved): every FrameChannel's "handoff" question is refused until
// the returned function puts sendJson back.
import { FrameChannel } from "../../src/p2p/frames.js";

export function failHandoffQuestions(): () => void {
  const sendJson = FrameChannel.prototype.sendJson;
  FrameChannel.prototype.sendJson = function (value: unknown) {
    if ((value as Record<string, unknown>).question === "handoff") return Promise.reject(new Error("unreachable (injected)"));
    return sendJson.call(this, value);
  };
  return () => {
    FrameChannel.prototype.sendJson = sendJson;
  };
}
