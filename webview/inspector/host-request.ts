/** How a tab asks the host for data: the inspector app numbers the request and matches the reply. */
import type { HostToInspectorMessage, InspectorToHostMessage } from '../../src/shared/protocol.js';

export type RequestMessage = Extract<InspectorToHostMessage, { requestId: number }>;
export type HostRequest = (message: RequestMessage) => Promise<HostToInspectorMessage>;
