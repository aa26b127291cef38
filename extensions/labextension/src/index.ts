/**
 * Cloisonné export airlock in JupyterLab: "Request export…" on files in the file browser
 * (one or several), a justification form, and an "Exports" side panel listing the user's
 * requests and their states. The workspace server snapshots the files and sends them to the
 * airlock service with the workspace's own token (see cloisonne.workspace.export_handlers).
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

const COMMAND = 'cloisonne:request-export';

/** The airlock's own pages (outside the workspace), where released files are downloaded. */
function airlockPage(id: string): string {
  const hubPrefix = PageConfig.getOption('hubPrefix') || '/hub/';
  const root = hubPrefix.replace(/hub\/?$/, '');
  return `${PageConfig.getOption('hubHost')}${root}services/cloisonne/airlock/requests/${id}`;
}
const FILE_SELECTOR = '.jp-DirListing-item[data-isdir="false"]';

interface IExportFile {
  name: string;
  sha256: string;
  size: number;
  check_status: string;
}

interface IExportRequest {
  id: string;
  project: string;
  state: string;
  round: number;
  created_at: string;
  files: IExportFile[];
  duplicate?: boolean;
}

async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'cloisonne', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new Error(data.message || response.statusText);
  }
  return data as T;
}

/** The dialog body: the files asked for and the justification. */
class JustificationBody extends Widget {
  constructor(paths: string[]) {
    super();
    this.addClass('cl-ExportDialog');
    const intro = document.createElement('p');
    intro.textContent =
      'These files will be checked automatically and reviewed by the project leads before ' +
      'they can leave the workspace:';
    const list = document.createElement('ul');
    for (const p of paths) {
      const li = document.createElement('li');
      li.textContent = p;
      list.appendChild(li);
    }
    const label = document.createElement('label');
    label.textContent = 'What are these files, and why must they leave?';
    this._text = document.createElement('textarea');
    this._text.name = 'justification';
    this._text.setAttribute('aria-label', 'justification');
    label.appendChild(this._text);
    this.node.append(intro, list, label);
  }

  getValue(): string {
    return this._text.value;
  }

  private _text: HTMLTextAreaElement;
}

/** The "Exports" side panel: the user's requests in this workspace's project. */
class ExportsPanel extends Widget {
  constructor() {
    super();
    this.id = 'cloisonne-exports';
    this.addClass('cl-Exports');
    this.title.label = 'Exports';
    this.title.caption = 'Export requests (the airlock)';
    const heading = document.createElement('h2');
    heading.textContent = 'Export requests';
    const refresh = document.createElement('button');
    refresh.textContent = 'Refresh';
    refresh.className = 'jp-mod-styled';
    refresh.onclick = () => void this.refresh();
    this._list = document.createElement('div');
    this._list.className = 'cl-Exports-list';
    this.node.append(heading, refresh, this._list);
  }

  async refresh(): Promise<void> {
    try {
      const data = await requestAPI<{ requests: IExportRequest[] }>('exports');
      this.render(data.requests);
    } catch (err) {
      this._list.textContent = `Could not load requests: ${(err as Error).message}`;
    }
  }

  render(requests: IExportRequest[]): void {
    this._list.replaceChildren();
    if (!requests.length) {
      this._list.textContent = 'No export requests yet. Right-click a file: Request export…';
      return;
    }
    for (const r of requests) {
      const item = document.createElement('div');
      item.className = 'cl-Exports-item';
      item.dataset.requestId = r.id;
      const head = document.createElement('div');
      const state = document.createElement('span');
      state.className = 'cl-Exports-state';
      state.textContent = r.state;
      const link = document.createElement('a');
      link.href = airlockPage(r.id);
      link.target = '_blank';
      link.rel = 'noopener';
      link.textContent = r.id;
      link.title = 'Open in the airlock (downloads once released)';
      head.append(link, ' ', state);
      const files = document.createElement('div');
      files.className = 'cl-Exports-files';
      files.textContent = r.files
        .map(f => `${f.name} (${f.check_status || 'not checked'})`)
        .join(', ');
      item.append(head, files);
      this._list.appendChild(item);
    }
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  private _list: HTMLDivElement;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@cloisonne/airlock:plugin',
  description: 'Request export of files through the Cloisonné airlock',
  autoStart: true,
  requires: [IDefaultFileBrowser],
  optional: [ILabShell],
  activate: (
    app: JupyterFrontEnd,
    browser: IDefaultFileBrowser,
    labShell: ILabShell | null
  ) => {
    const panel = new ExportsPanel();
    app.shell.add(panel, 'left', { rank: 900 });

    app.commands.addCommand(COMMAND, {
      label: 'Request export…',
      caption: 'Ask for these files to leave the workspace (checked, then reviewed)',
      isEnabled: () =>
        Array.from(browser.selectedItems()).some(i => i.type !== 'directory'),
      execute: async () => {
        const paths = Array.from(browser.selectedItems())
          .filter(i => i.type !== 'directory')
          .map(i => i.path);
        if (!paths.length) {
          return;
        }
        const result = await showDialog({
          title: 'Request export',
          body: new JustificationBody(paths),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit' })],
          focusNodeSelector: 'textarea'
        });
        if (!result.button.accept) {
          return;
        }
        try {
          const request = await requestAPI<IExportRequest>('exports', {
            method: 'POST',
            body: JSON.stringify({ paths, why: result.value ?? '' })
          });
          app.shell.activateById(panel.id);
          await panel.refresh();
          const verb = request.duplicate ? 'is already open' : 'was submitted';
          void showDialog({
            title: 'Export requested',
            body: `Request ${request.id} ${verb}; state: ${request.state}.`,
            buttons: [Dialog.okButton()]
          });
        } catch (err) {
          void showErrorMessage('Export not requested', (err as Error).message);
        }
      }
    });
    app.contextMenu.addItem({ command: COMMAND, selector: FILE_SELECTOR, rank: 3 });
    if (labShell) {
      labShell.restored.then(() => void panel.refresh());
    }
  }
};

export default plugin;
