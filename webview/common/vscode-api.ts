/** The webview side of the VS Code API, typed by the messages this view sends and the state it keeps. */

interface VsCodeApi<Out, State> {
  postMessage(message: Out): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<Out, State>(): VsCodeApi<Out, State>;

let api: unknown;

/** acquireVsCodeApi may be called only once per page. */
export function vscodeApi<Out, State>(): VsCodeApi<Out, State> {
  api ??= acquireVsCodeApi<Out, State>();
  return api as VsCodeApi<Out, State>;
}
