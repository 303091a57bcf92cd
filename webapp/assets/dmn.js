// The DMN modeler (decision tables, DRD, literal expressions).
import DmnModeler from 'dmn-js/lib/Modeler';

window.GmpflowDmn = { DmnModeler };
