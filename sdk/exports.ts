// The igor lifecycle exports, for an agent's entry file: `export * from "igord/sdk/exports"`.
export * from "../agents/sdk/exports";
