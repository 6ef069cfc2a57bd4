#ifndef SBX_STAGE_H
#define SBX_STAGE_H

// argv[0] of the init stage (stageInit in stage.go).
#define SBX_STAGE_INIT "sbx:init"

// The packet init's constructor sends on its control socket once its
// exec is done (execedMark in initns_linux.go).
#define SBX_EXECED "E"

// What the constructor's unshare(2) of init's namespaces gave: 0, an
// errno, or -1 when this process is not the init stage (no constructor
// ran for it).
int sbx_init_unshare_errno(void);

#endif
