// The BPMN modeler for process owners, with bpmn-js-properties-panel and gmpflow's properties provider.
import Modeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import GmpflowPropertiesModule from './gmpflow-properties.js';

const panelModules = [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, GmpflowPropertiesModule];

window.GmpflowModeler = { Modeler, panelModules };
