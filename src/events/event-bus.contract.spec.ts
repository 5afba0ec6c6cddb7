import { eventBusContract } from './event-bus.contract.js';
import { InProcessEventBus } from './in-process-event-bus.js';

// Every EventBus implementation runs the same contract: one line each.
eventBusContract('InProcessEventBus', () => ({ bus: new InProcessEventBus() }));
