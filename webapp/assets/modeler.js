// The BPMN modeler for process owners.
import Modeler from 'bpmn-js/lib/Modeler';

window.GmpflowModeler = { Modeler };
