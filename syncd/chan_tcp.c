/* placeholder: the TCP control channel (written next) */
#include "chan.h"
