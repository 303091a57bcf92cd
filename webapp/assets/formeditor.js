// The form-js editor for process owners (the forms of a process bundle), from @bpmn-io/form-js.
import { FormEditor } from '@bpmn-io/form-js';

window.GmpflowFormEditor = { FormEditor };
